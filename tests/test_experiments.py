"""The chapter header: it names the data a chapter uses (dataset, split, images), never a folder."""

from alexnet_lib.experiments import Chapter, data_used, split_size

from .helpers import make_cifar_like


def test_the_header_counts_the_images_of_each_split_as_load_dataset_would(no_data, capsys):
    make_cifar_like(no_data, per_class=12)  # two classes, 24 images in each split
    assert split_size("cifar10", "train") == 24
    assert split_size("cifar10", "train", 10) == 10  # a class-balanced subset: 5 per class
    assert split_size("cifar10", "train", 7) == 6  # 7 // 2 = 3 per class
    chapter = Chapter("Chapter 0", "smoke", data=[("cifar10", "train", 10), ("cifar10", "test")], seed=0)
    header = capsys.readouterr().out.splitlines()
    assert header[0] == "Chapter 0" and header[1].startswith("mode: smoke | device: ")
    assert header[2] == "data: cifar10/train: 10 images, cifar10/test: 24 images | seed: 0"
    assert str(no_data) not in "\n".join(header)
    chapter.done()
    assert capsys.readouterr().out.startswith("wall time: ")


def test_data_given_in_words_is_printed_as_given():
    assert data_used("recorded runs (book/results)") == "recorded runs (book/results)"
    assert data_used([]) == data_used("") == "-"


def test_a_dataset_that_is_not_there_is_named_in_the_header(no_data):
    assert data_used([("imagenette", "val", None)]) == "imagenette/val: not found"

