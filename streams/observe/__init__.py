"""Read-only views of what the pipeline did (receipt trace), shared by the CLI and the worker."""
