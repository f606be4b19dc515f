from rehabmap.cli import main

main()
