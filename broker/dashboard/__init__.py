"""The live dashboard (``gridmesh monitor --dashboard``) and what run playback shares with it.

``state`` is the pure model built from decoded bus messages, ``panels`` turns it into
the rows and lines every view shows, ``feed`` brings a broker's messages in, and
``app`` is the terminal view (textual, the ``dashboard`` extra).
"""
