"""What a caller of mien gets back: the reply types, plain dataclasses.

One definition of each, shared by the engine and its servicers (which fill them or
the wire messages they mirror) and by both clients (which read the wire messages
back into them). Nothing here imports the engine, the server or grpc: the standard
library, numpy and the other base modules only, so `mien.clients` stays light.

    search      what the search calls return (hits, the query face, FaceQA's verdict on it)
    catalog     faces, persons, sources, stats, pages of a list
    index_jobs  server-side indexing runs and their progress
    analytics   tags, tag reports, summaries and clusters
    tables      the text tables the `mien` commands print from them

Import from the module that holds a type (mien.results.search, ...): the package itself
loads nothing, so a command that only prints a table does not build every class.
"""
