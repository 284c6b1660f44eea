"""mien.engine.analytics: custom expression tags, tagging of videos, summaries, clusters."""

from mien.engine.analytics.segments import Segment, merge_segments, sample_period_ms
from mien.engine.analytics.summaries import (
    Cluster,
    PersonSummary,
    StoreClusters,
    cluster_store,
    cluster_vectors,
    summarize_person,
)
from mien.engine.analytics.tags import (
    DEFAULT_THRESHOLD,
    PersonTagCount,
    PersonTagResult,
    SourceTagReport,
    StoreTagReport,
    create_tag,
    delete_tag,
    expression_from_image,
    list_tags,
    set_threshold,
    tag_distances,
    tag_source,
    tag_store,
)

__all__ = [
    "Cluster", "DEFAULT_THRESHOLD", "PersonSummary", "PersonTagCount", "PersonTagResult",
    "Segment", "SourceTagReport", "StoreClusters", "StoreTagReport", "cluster_store",
    "cluster_vectors", "create_tag", "delete_tag", "expression_from_image", "list_tags",
    "merge_segments", "sample_period_ms", "set_threshold", "summarize_person", "tag_distances", "tag_source",
    "tag_store",
]
