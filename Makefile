# Two commands do everything from a fresh clone; the environment is created on first use.
#   make book   build the rendered book into _build/html
#   make test   run the whole test suite (unit tests, every chapter in smoke mode, the book build)
# Also: make data (download CIFAR-10 and Imagenette into data/ or $ALEXNET_DATA), make lab
# (open the chapters in JupyterLab), make chapters (re-run every chapter in $ALEXNET_MODE, no progress bars, and
# save its outputs), make bench.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

# Notebooks run with their own folder as working directory, so a relative data root
# given on the command line is made absolute here.
ifdef ALEXNET_DATA
export ALEXNET_DATA := $(abspath $(ALEXNET_DATA))
endif

.PHONY: book test test-old-cpu lab chapters bench env clean data

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[book,test]'
	rm -f $(VENV)/.installed-*
	touch $@

env: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	ALEXNET_MODE=smoke $(BIN)/python -m pytest

data: $(STAMP)
	$(BIN)/python -m alexnet_lib.download

# The unit tests as an older CPU runs them: no AVX kernels in PyTorch or oneDNN.
test-old-cpu: $(STAMP)
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 ALEXNET_MODE=smoke $(BIN)/python -m pytest tests \
	  --ignore tests/test_book.py --ignore tests/test_browser.py --ignore tests/test_links.py -p no:cacheprovider

lab: $(STAMP)
	$(BIN)/jupyter lab book/

chapters: $(STAMP)
	cd book && for nb in [0-9]*.ipynb; do \
	  TQDM_DISABLE=1 ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 "$$nb" || exit 1; \
	done

bench: $(STAMP)
	for b in bench/bench_*.py; do [ "$$b" = bench/bench_figure1.py ] || $(BIN)/python "$$b" || exit 1; done
	@echo "bench/bench_figure1.py (Figure 1 in full mode) is left out: it is meant for a GPU; run it by hand."

clean:
	rm -rf _build data/cache
