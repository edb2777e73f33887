"""udfhost.api: datasets, run_udf, run_udf_iter, results, against NumPy on the sample scan."""
import numpy as np

import udfhost.api as lt
from udfhost.udf.sum import SumUDF
from udfhost.udf.sumsigudf import SumSigUDF


def test_load_describes_the_dataset(sample):
    assert tuple(sample.shape.nav) == (24, 32)
    assert tuple(sample.shape.sig) == (48, 48)
    assert sample.shape == (24, 32, 48, 48)
    assert sample.dtype == np.uint16
    assert sample.format == "raw"


def test_sum_matches_numpy(ctx, sample, sample_data):
    res = ctx.run_udf(dataset=sample, udf=SumUDF())
    assert set(res) == {"intensity"}
    out = res["intensity"].data
    assert out.dtype == np.float32 and out.shape == (48, 48)
    assert np.array_equal(out, sample_data.sum(axis=(0, 1), dtype=np.int64).astype(np.float32))


def test_two_udfs_one_pass_with_roi(ctx, sample, sample_data):
    roi = np.zeros((24, 32), bool)
    roi[3:10, 5:20] = True
    a, b = ctx.run_udf(dataset=sample, udf=[SumUDF(), SumSigUDF()], roi=roi)
    assert np.array_equal(a["intensity"].data,
                          sample_data[roi].sum(axis=0, dtype=np.int64).astype(np.float32))
    sums = b["intensity"].data
    want = sample_data.sum(axis=(2, 3), dtype=np.int64).astype(np.float32)
    assert np.array_equal(sums[roi], want[roi])
    assert np.isnan(sums[~roi]).all()
    assert b["intensity"].raw_data.shape == (roi.sum(),)
    assert np.array_equal(b["intensity"].valid_mask, roi)


def test_run_udf_iter_ends_with_the_final_results(ctx, sample):
    parts = list(ctx.run_udf_iter(dataset=sample, udf=[SumUDF()]))
    final = ctx.run_udf(dataset=sample, udf=SumUDF())
    assert parts and parts[-1].damage.data.all()
    assert np.array_equal(parts[-1].buffers[0]["intensity"].data, final["intensity"].data)


def test_memory_dataset_equals_file(ctx, sample, sample_data):
    mem = ctx.load("memory", data=sample_data)
    a = ctx.run_udf(dataset=mem, udf=lt.Plugin("sum"))
    b = ctx.run_udf(dataset=sample, udf=lt.Plugin("sum"))
    assert np.array_equal(a["intensity"].data, b["intensity"].data)
