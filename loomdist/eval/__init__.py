"""LOOM's evaluation (DeviationMetrics) and the run directory's Arrow tables and plots."""

from .checkpoint_files import evaluate_from_checkpoint_files
from .metrics import (
    BUCKET_ORDER,
    BUCKETS,
    DeviationBucket,
    DeviationMetrics,
    PredictionResult,
    evaluate_model,
    evaluate_network,
    evaluate_prediction,
)
from .metrics_json import go_float64, load_metrics, metrics_to_json, save_metrics
from .plots import plot_bucket_heatmap, plot_deviation_histogram, plot_loss
from .tables import (
    BUCKETS_SCHEMA,
    HISTORY_SCHEMA,
    PREDICTIONS_SCHEMA,
    append_parquet,
    buckets_table,
    history_table,
    predictions_table,
    read_parquet,
    write_parquet,
)

__all__ = [
    "BUCKETS", "BUCKET_ORDER", "DeviationBucket", "DeviationMetrics", "PredictionResult",
    "evaluate_prediction", "evaluate_model", "evaluate_network",
    "evaluate_from_checkpoint_files", "load_metrics",
    "save_metrics", "metrics_to_json", "go_float64",
    "PREDICTIONS_SCHEMA", "BUCKETS_SCHEMA", "HISTORY_SCHEMA", "predictions_table",
    "buckets_table", "history_table", "write_parquet", "read_parquet", "append_parquet",
    "plot_loss", "plot_deviation_histogram", "plot_bucket_heatmap",
]
