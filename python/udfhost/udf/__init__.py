"""UDFs udfhost runs, with LiberTEM's module names: udfhost.udf.sum.SumUDF,
udfhost.udf.sumsigudf.SumSigUDF, udfhost.udf.stddev.StdDevUDF, udfhost.udf.logsum.LogsumUDF,
udfhost.udf.masks.ApplyMasksUDF, udfhost.udf.com.CoMUDF, udfhost.udf.raw.PickUDF,
udfhost.udf.FEM.FEMUDF, udfhost.udf.record.RecordUDF; and Plugin for any other plugin."""
from ._plugin import Plugin

__all__ = ["Plugin"]
