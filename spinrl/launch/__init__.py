"""Starting runs: the experiment grid and its command-line syntax, each variant planned and checked, local
processes and MPI jobs, the fork server, Ray, and run specs."""
