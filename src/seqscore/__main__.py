from seqscore.cli import main

main()
