"""mien.indexer: crawl image/video archives into the store.

    from mien.indexer import index_paths, IndexOptions, IndexSummary, enroll_person
"""

from mien.indexer.summary import IndexOptions, IndexSummary


def index_paths(paths, store_dir, options=None, engine_config=None, progress=None, **kwargs) -> IndexSummary:
    """See mien.indexer.pipeline.index_paths (imported lazily: it pulls in the engine)."""
    from mien.indexer import pool_start

    pool_start.start(options.workers if options is not None else 0, options)  # imports beside the pipeline's
    from mien.indexer.pipeline import index_paths as run

    return run(paths, store_dir, options=options, engine_config=engine_config, progress=progress, **kwargs)


def enroll_person(store_dir, name, images, engine_config=None, **kwargs) -> dict:
    """See mien.indexer.enroll.enroll_person."""
    from mien.indexer.enroll import enroll_person as run

    return run(store_dir, name, images, engine_config, **kwargs)


__all__ = ["index_paths", "enroll_person", "IndexOptions", "IndexSummary"]
