"""The errors a run's outcome is classified by (pipeline/outcomes.py), defined where every layer can raise them.

`inatvision run` maps them, by type, to the statuses of docs/contract.md: `ValidationFailed` to
`validation_failed` (exit 4), `InputError` and `ConfigError` to `input_error` (exit 2); anything else is `failed`.
They may arrive wrapped (raised `from` another exception, or while handling one): the classifier walks the chain.
"""


class ConfigError(ValueError):
    """A configuration key or value the user gave is wrong."""


class InputError(Exception):
    """A fatal problem with the input (the export, a table, a column); the message is one line naming it."""


class ValidationFailed(RuntimeError):
    """Blocking anomalies found by the validation gate; the message names each one."""
