"""The window aggregation on Apache Spark: the same Ibis definition, a PySpark backend.

Nothing here defines a count. ``SparkLakeReader`` turns the files of a Parquet
event lake (``seqscore.storage.parquet_events``: hive-partitioned by ``day``)
into an Ibis table on a Spark session, and the aggregation
(``compute_window_counts``, through ``seqscore.service.results.compute_results``)
compiles for Spark exactly as it does for DuckDB. ``seqscore compute --engine
spark`` wires the two.

Needs the optional extra ``spark`` (``ibis-framework[pyspark]``, ``pyspark>=4.0,<4.1``)
and Java 17 or 21; imported only when asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import ibis
import pyarrow as pa

from seqscore.event_schema import EVENT_SCHEMA

#: Always set: Spark must read and write timestamps and dates as UTC, as every
#: other part of seqscore does.
REQUIRED_CONF: dict[str, str] = {"spark.sql.session.timeZone": "UTC"}
#: Defaults a ``--conf`` may override. Arrow makes collecting results cheap; the
#: plan is a few hundred small stages, so local mode wants few shuffle partitions.
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}
#: Object-store schemes as pyarrow names them -> as Hadoop's connectors do.
_HADOOP_SCHEMES = {"s3": "s3a", "gcs": "gs"}


def _local_cores(master: str) -> int | None:
    if not master.startswith("local"):
        return None
    inside = master.removeprefix("local").strip("[]").split(",")[0]
    if inside in ("", "*"):
        import os

        return os.cpu_count() or 1
    return int(inside) if inside.isdigit() else None


def spark_session(master: str = "local[*]", conf: Mapping[str, str] | None = None,
                  app_name: str = "seqscore") -> Any:
    """A SparkSession on ``master`` (``local[N]``, ``spark://host:7077``, ``yarn``,
    ``k8s://...``), or the one already running in this process (then ``master``
    and ``conf`` other than the required ones cannot change it).

    ``conf`` adds or overrides Spark settings (e.g. ``spark.driver.memory``,
    ``spark.executor.instances``, the ``spark.hadoop.fs.s3a.*`` credentials of an
    object-store lake). In local mode the shuffle partitions default to 2 per core.
    """
    from pyspark.sql import SparkSession

    settings = dict(DEFAULT_CONF)
    cores = _local_cores(master)
    if cores:
        settings["spark.sql.shuffle.partitions"] = str(2 * cores)
        settings["spark.default.parallelism"] = str(2 * cores)
    settings.update(conf or {})
    settings.update(REQUIRED_CONF)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for key, value in REQUIRED_CONF.items():
        session.conf.set(key, value)  # an existing session may have been built without
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_schema() -> Any:
    """``EVENT_SCHEMA`` as a Spark StructType (``day`` is the lake's partition column)."""
    from pyspark.sql import types as T

    kinds = {pa.int64(): T.LongType(), pa.string(): T.StringType(), pa.bool_(): T.BooleanType(),
             pa.date32(): T.DateType(), pa.timestamp("us", tz="UTC"): T.TimestampType()}
    return T.StructType([T.StructField(f.name, kinds[f.type], f.nullable)
                         for f in EVENT_SCHEMA])


def hadoop_uri(uri: str) -> str:
    """A lake file URI as Spark's filesystems name it (``s3://`` -> ``s3a://``)."""
    scheme, sep, rest = uri.partition("://")
    return f"{_HADOOP_SCHEMES.get(scheme, scheme)}{sep}{rest}" if sep else uri


class SparkLakeReader:
    """Reads a snapshot of a Parquet event lake as an Ibis table on Spark.

    Called with the lake's events folder and the data files of one snapshot (see
    ``ParquetEventStore.with_reader``); Spark takes ``day`` from each file's
    ``day=YYYY-MM-DD`` folder and prunes days the aggregation does not read.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self.backend = ibis.pyspark.connect(session)

    @contextmanager
    def __call__(self, base: str, files: Sequence[str]) -> Iterator[Any]:
        schema = spark_schema()
        if files:
            frame = (self.session.read.schema(schema).option("basePath", hadoop_uri(base))
                     .parquet(*[hadoop_uri(f) for f in files]))
        else:
            frame = self.session.createDataFrame([], schema)
        view = f"seqscore_events_{uuid.uuid4().hex}"
        frame.select(*EVENT_SCHEMA.names).createOrReplaceTempView(view)
        try:
            yield self.backend.table(view)
        finally:
            self.session.catalog.dropTempView(view)
