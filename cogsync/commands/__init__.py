"""The ``cogsync`` subcommands, one module per group; :mod:`cogsync.cli` assembles them."""
