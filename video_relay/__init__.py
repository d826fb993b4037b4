"""Turns public camera streams into HLS / MPEG-TS / snapshots an old set-top box can
play, one ffmpeg per camera and profile, only while someone watches."""
