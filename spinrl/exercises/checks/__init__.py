"""One checker module per exercise: ``check(module, report)`` raises CheckFailed with a hint."""
