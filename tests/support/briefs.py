"""Briefs for tests: the header of every column and a brief with one bad row of each kind."""

from tasks.intake.brief import BRIEF_COLUMNS

HEADER = ",".join(BRIEF_COLUMNS) + "\n"


BAD_BRIEF = HEADER + """good-1,Good One,calm piano,,,1,,,,wav,,90,
lyrics-only,L,,,la la la,2,,,,wav,,,
tags-only,T,,pop,,3,,,,wav,,,
all-three,A,p,pop,la la,4,,,,wav,,,
bad-format,F,p,,,5,,,,aiff,,,
wav-bitrate,W,p,,,6,,,,wav,192,,
three-songs,S,p,,,7,,,3,mp3,,,
fast-bpm,B,p,,,8,,,,mp3,,fast,
good-1,Dup,p,,,9,,,,mp3,,,
neg-seed,N,p,,,-5,,,,mp3,,,
frac-seed,Q,p,,,7.5,,,,mp3,,,
good-2,Good Two,,rock|indie,"[verse]
hello world",,,,2,m4a,256,auto,true
"""
