from mnistlab.cli.app import main

main()
