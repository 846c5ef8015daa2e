from steamwatch.cli import main

main()
