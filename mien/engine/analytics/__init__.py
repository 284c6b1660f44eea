"""mien.engine.analytics: custom expression tags, tagging of videos, summaries, clusters.

The results are the reply types of mien.results.analytics (also named here), so a
caller in this process and a client of a server get the same classes."""

from mien.engine.analytics.segments import merge_segments, sample_period_ms
from mien.engine.analytics.summaries import cluster_store, cluster_vectors, summarize_person
from mien.engine.analytics.tags import (DEFAULT_THRESHOLD, create_tag, delete_tag, expression_from_image,
                                        list_tags, set_threshold, tag_distances, tag_source, tag_store)
from mien.results.analytics import (Cluster, PersonSummary, PersonTagCount, PersonTagResult, Segment,
                                    SourceTagReport, StoreClusters, StoreTagReport)

__all__ = [
    "Cluster", "DEFAULT_THRESHOLD", "PersonSummary", "PersonTagCount", "PersonTagResult",
    "Segment", "SourceTagReport", "StoreClusters", "StoreTagReport", "cluster_store",
    "cluster_vectors", "create_tag", "delete_tag", "expression_from_image", "list_tags",
    "merge_segments", "sample_period_ms", "set_threshold", "summarize_person", "tag_distances", "tag_source",
    "tag_store",
]
