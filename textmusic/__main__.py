from textmusic.cli import main

main()
