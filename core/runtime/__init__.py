"""Runtime pieces the methods and the engine both use (methods may import only `core`): the glibc
allocator setting, process start and supervision helpers, injected straggler delays."""
