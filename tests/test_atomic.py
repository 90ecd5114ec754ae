"""The one atomic-write helper: whole or nothing, and nothing left behind."""

import pytest

from rsnet.atomic import atomic_path, write_json_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    write_json_atomic(path, {"accuracy": 0.5})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text('{"accur')  # half written, then the writer dies
            raise RuntimeError("killed")
    assert path.read_text() == '{\n "accuracy": 0.5\n}' and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_directories_appear_whole_and_temporaries_keep_the_suffix(tmp_path):
    store = tmp_path / "store"
    with atomic_path(store) as tmp:
        assert tmp.parent == tmp_path and not store.exists()
        tmp.mkdir()
        (tmp / "frames.u8").write_bytes(b"\0" * 8)
    assert (store / "frames.u8").stat().st_size == 8
    with pytest.raises(ValueError), atomic_path(tmp_path / "clip.mp4") as tmp:
        assert tmp.suffix == ".mp4"  # writers that read the format from the name
        tmp.mkdir()
        (tmp / "1.bmp").write_bytes(b"x")
        raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
