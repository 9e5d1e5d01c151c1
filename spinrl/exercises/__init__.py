"""Self-checking exercises: ``spinrl exercise list | init ID DIR | ID --file PATH | ID --solution``.

Each exercise has a template with TODOs (``templates/``), a reference solution (``solutions/``), a checker
that names the mistake it sees (``checks/``), and a written solution page in the docs (``docs/exercises/``).
"""
