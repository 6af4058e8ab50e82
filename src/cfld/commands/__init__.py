"""Sub-commands of the `cfld` CLI, one module each (see :mod:`cfld.cli`)."""
