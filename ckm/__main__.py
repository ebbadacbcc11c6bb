from ckm.cli import main

main()
