"""`import_keras`: Keras 3 models (on its torch backend, no TensorFlow) in one call, checked against Keras.

Every case runs Keras itself on random weights and ragged, masked batches and compares the
oracle and the exported model (onnxruntime) with it. What Keras does at masked steps is
asserted too, so the documented differences (`rnngraph.interop.keras`) cannot drift.
"""

import os

import numpy as np
import pytest

from rnngraph.errors import InputError, ModelError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.interop import import_keras
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from tests.conftest import assert_close

pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # KERAS_BACKEND is set in conftest before keras is first imported
    pytest.skip(f"Keras runs on {keras.backend.backend()} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')})",
                allow_module_level=True)

L = keras.layers
# Keras' own get_weights() converts its torch-backed variables through an __array__ that numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
FEATURES, VOCAB, MASK_VALUE = 3, 11, -1.0
#: rows of 6, 3 and 1 valid steps, then padding
LENGTHS = np.array([6, 3, 1])


def token_batch():
    ids = np.random.default_rng(0).integers(1, VOCAB, size=(3, 6))
    ids[np.arange(6)[None, :] >= LENGTHS[:, None]] = 0
    return ids.astype(np.int64)


def float_batch(width=FEATURES, seed=1):
    x = np.random.default_rng(seed).standard_normal((3, 6, width)).astype(np.float32)
    x[np.arange(6)[None, :] >= LENGTHS[:, None]] = MASK_VALUE
    return x


def keras_outputs(model, x):
    outs = model(x, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [o.detach().cpu().numpy() for o in outs]


def run(keras_model, x):
    """(Keras outputs, oracle outputs, onnxruntime outputs), in the order of keras_model.outputs."""
    imported = import_keras(keras_model)
    model, params = imported
    (name,) = model.inputs
    feeds = imported.feeds(**{name: x})
    names = list(model.outputs)
    ref = oracle.run(model, params, **feeds)
    got = Session(build_model_proto(model, params)).run(**feeds)
    return keras_outputs(keras_model, x), [ref[n] for n in names], [got[n] for n in names]


def assert_all_close(want, *ours, valid_only=()):
    """Each output of `ours` equals Keras; for indices in `valid_only`, on valid steps, 0 on padded ones."""
    padded = np.arange(6)[None, :] >= LENGTHS[:, None]
    for kind, outs in zip(("oracle", "export"), ours, strict=False):
        worst = 0.0
        for i, (w, o) in enumerate(zip(want, outs, strict=True)):
            if i in valid_only:
                assert not o[padded].any(), f"output {i}: rnngraph emits 0 at padded steps"
                w = np.where(padded[..., None], 0.0, w)
            assert_close(o, w, "reference", what=f"output {i}")
            worst = max(worst, float(np.max(np.abs(o - w))))
        print(f"max abs error vs Keras: {kind} {worst:.1e}")  # for the record (pytest -rP shows it)


def with_random_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_embedding_mask_lstm_states_bidirectional_gru_and_dense():
    ids = keras.Input((None,), dtype="int32", name="ids")
    e = L.Embedding(VOCAB, 4, mask_zero=True)(ids)
    y, h, c = L.LSTM(5, return_sequences=True, return_state=True)(e)
    b = L.Bidirectional(L.GRU(3, reset_after=False, return_sequences=True), merge_mode="sum")(y)
    km = with_random_weights(keras.Model(ids, [L.Dense(2, activation="softmax")(L.Dropout(0.3)(b)), h, c]))
    want, ref, got = run(km, token_batch())
    assert_all_close(want, ref, got, valid_only=(0,))  # Dense over the padded steps: Keras softmax(b), rnngraph 0
    notes = " ".join(import_keras(km).notes)
    assert "dense: at padded steps rnngraph emits 0" in notes and "dropout: Dropout acts only in training" in notes


@pytest.mark.parametrize("merge", ["concat", "sum", "mul", "ave", None])
def test_masked_bidirectional_every_merge_mode(merge):
    """A Bidirectional returning sequences zeroes masked steps (Keras forces zero_output_for_mask): exact match."""
    x = keras.Input((None, FEATURES), name="x")
    m = L.Masking(mask_value=MASK_VALUE)(x)
    outs = L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode=merge)(m)
    km = with_random_weights(keras.Model(x, outs), seed=len(str(merge)))
    want, ref, got = run(km, float_batch())
    assert_all_close(want, ref, got)


def test_bidirectional_gru_last_output_and_states_under_a_mask():
    x = keras.Input((None, FEATURES), name="x")
    outs = L.Bidirectional(L.GRU(4, return_state=True), merge_mode="concat")(L.Masking(mask_value=MASK_VALUE)(x))
    km = with_random_weights(keras.Model(x, list(outs)), seed=3)
    want, ref, got = run(km, float_batch(seed=2))
    assert len(want) == 3  # [concat(h_fw(L-1), h_bw(0)), h_fw, h_bw]
    assert_all_close(want, ref, got)


def test_simple_rnn_go_backwards_last_output_and_state():
    x = keras.Input((None, FEATURES), name="x")
    y, h = L.SimpleRNN(5, activation="relu", go_backwards=True, return_state=True)(L.Masking(mask_value=MASK_VALUE)(x))
    km = with_random_weights(keras.Model(x, [L.Dense(2)(y), h]), seed=4)
    want, ref, got = run(km, float_batch(seed=3))
    assert_all_close(want, ref, got)


def test_sequential_without_mask_stacked_lstm_gru():
    km = with_random_weights(keras.Sequential([keras.Input((None, FEATURES)), L.LSTM(5, return_sequences=True),
                                               L.GRU(4, return_sequences=True), L.Dense(3, activation="tanh")]), 5)
    x = np.random.default_rng(6).standard_normal((2, 7, FEATURES)).astype(np.float32)
    imported = import_keras(km)
    assert "lengths" not in imported.feeds(**{next(iter(imported.model.inputs)): x})
    want = keras_outputs(km, x)
    ref = oracle.run(imported.model, imported.params, **{next(iter(imported.model.inputs)): x})
    assert_close(ref["y"], want[0], "reference", what="y")


def test_what_keras_emits_at_masked_steps():
    """A standalone layer repeats its last valid output at masked steps (zero_output_for_mask=False) or
    emits 0 (True); the states stop at the last valid step. rnngraph emits 0 there: equal to the latter."""
    x = keras.Input((None, FEATURES), name="x")
    m = L.Masking(mask_value=MASK_VALUE)(x)
    repeat = L.GRU(4, return_sequences=True, return_state=True, name="repeat")
    zeros = L.GRU(4, return_sequences=True, return_state=True, zero_output_for_mask=True)
    km = with_random_weights(keras.Model(x, [*repeat(m), *zeros(m)]), seed=7)
    want, ref, got = run(km, float_batch(seed=4))
    for b, length in enumerate(LENGTHS):
        assert np.array_equal(want[0][b, length:], np.repeat(want[0][b, length - 1:length], 6 - length, axis=0))
        assert not want[2][b, length:].any()
        assert np.array_equal(want[1][b], want[0][b, length - 1])  # the state is the last valid step's
    assert_all_close(want, ref, got, valid_only=(0,))
    assert any("repeat: at padded steps rnngraph emits 0; this Keras layer repeats its last valid output" in note
               for note in import_keras(km).notes)


def test_masks_rnngraph_cannot_express_are_refused():
    x = keras.Input((None, FEATURES), name="x")
    km = keras.Model(x, L.LSTM(3)(L.Masking(mask_value=MASK_VALUE)(x)))
    imported = import_keras(km)
    gap = float_batch()
    gap[0, 2] = MASK_VALUE
    with pytest.raises(InputError, match=r"the mask of input 'x': row 0 has the mask \[1, 1, 0, 1, 1, 1\]; rnngraph "
                                         r"takes masks that keep a row's first steps .* padding='post'"):
        imported.feeds(x=gap)
    leading = float_batch()[:, ::-1].copy()
    with pytest.raises(InputError, match=r"row 1 has the mask \[0, 0, 0, 1, 1, 1\]"):
        imported.feeds(x=leading)
    with pytest.raises(InputError, match=r"row 0 has the mask \[0, 0, 0, 0, 0, 0\]"):
        imported.feeds(x=np.full((1, 6, FEATURES), MASK_VALUE, np.float32))


def refused(*layers):
    x = keras.Input((None, FEATURES), name="x")
    h = x
    for layer in layers:
        h = layer(h)
    return keras.Model(x, h)


def test_what_import_keras_refuses():
    with pytest.raises(ModelError, match=r"layer 'back': go_backwards=True with return_sequences=True emits the "
                                         r"sequence in reversed time order"):
        import_keras(refused(L.LSTM(3, go_backwards=True, return_sequences=True, name="back")))
    with pytest.raises(ModelError, match=r"layer 'z': zero_output_for_mask=True with return_sequences=False makes "
                                         r"Keras return 0"):
        import_keras(refused(L.Masking(), L.GRU(3, zero_output_for_mask=True, name="z")))
    with pytest.raises(ModelError, match=r"layer 'norm' is a LayerNormalization; rnngraph imports models built from "
                                         r"InputLayer, Embedding, Masking"):
        import_keras(refused(L.LSTM(3, return_sequences=True), L.LayerNormalization(name="norm")))
    with pytest.raises(ModelError, match=r"Keras layer 'relu_lstm': activation='relu' has no rnngraph counterpart; "
                                         r"expected 'tanh'"):
        import_keras(refused(L.LSTM(3, activation="relu", name="relu_lstm")))
    with pytest.raises(ModelError, match=r"SimpleRNN\(activation='elu'\) has no rnngraph counterpart"):
        import_keras(refused(L.SimpleRNN(3, activation="elu")))
    with pytest.raises(ModelError, match=r"Masking 'late' must read a model input"):
        import_keras(refused(L.Dense(3), L.Masking(name="late"), L.LSTM(2)))
    with pytest.raises(ModelError, match=r"Dense 'd' has activation='gelu'"):
        import_keras(refused(L.LSTM(3), L.Dense(2, activation="gelu", name="d")))
    x = keras.Input((None, FEATURES), name="x")
    own_mask = keras.ops.not_equal(x[:, :, 0], 0.0)
    with pytest.raises(ModelError, match=r"layer 'own' \(LSTM\) is called with a mask of its own"):
        import_keras(keras.Model(x, L.LSTM(3, name="own")(x, mask=own_mask)))
    h0 = keras.Input((3,), name="h0")
    with pytest.raises(ModelError, match=r"layer 'start' \(GRU\) is called with 1 tensors and initial_state; "
                                         r"rnngraph imports layers called on one tensor"):
        import_keras(keras.Model([x, h0], L.GRU(3, name="start")(x, initial_state=[h0])))
    with pytest.raises(ModelError, match=r"stateful=True carries states across calls"):
        import_keras(keras.Sequential([keras.Input((None, FEATURES), batch_size=2), L.LSTM(3, stateful=True)]))
    with pytest.raises(ModelError, match=r"has no symbolic outputs; build it from keras.Input"):
        import_keras(keras.Sequential([L.LSTM(3)]))
