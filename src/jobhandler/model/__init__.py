"""The pure model, no I/O: the job and its state machine, errors, retry policy, validation,
payload typing, tasks and their options, handles, tokens, the job context, the value types
every layer shares."""
