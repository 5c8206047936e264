"""`python -m sparklio_bi.cli`: how the bundle starts its own child processes."""
from sparklio_bi.cli import main

main()
