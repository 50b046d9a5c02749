"""Where the work runs. ``local`` uses every core of this machine; ``ray`` runs the same steps on Ray Data.
*What* runs (decode, convert, filter, pair, format) lives in the library modules; engines only schedule it."""
