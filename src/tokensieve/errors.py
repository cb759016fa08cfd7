"""One exception type for every mistake a user can make; the CLI prints it as one line and exits 2."""


class TokensieveError(ValueError):
    """Bad input or an unsupported setting, explained in one line."""
