"""One module of pure parse functions per annotation format."""
