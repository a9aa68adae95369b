"""What table modules share: the spec and its registry (`spec`), and the job layouts of 000's CIFAR
tables (`cifar`), 002's protocol (`lap002`) and 004's tables (`pd004`). Not entries themselves."""
