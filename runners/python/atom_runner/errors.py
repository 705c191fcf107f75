"""The one exception type every command turns into a one-line message and a non-zero exit."""


class AtomError(Exception):
    """A problem with what the user asked for or handed in, not a bug in the kit.

    The message is a single line that names the problem (the file, tensor or option).
    """
