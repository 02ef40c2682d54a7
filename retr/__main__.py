from retr.cli import main

main()
