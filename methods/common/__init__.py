"""What the training methods share (the Method interface and its registry, optimiser arithmetic,
the update exchange between processes): infrastructure, not methods, so `methods/__init__.py`
does not import it as one."""
