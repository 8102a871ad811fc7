"""Compiles the pipeline with the Kubeflow Pipelines SDK from the component specs.

pipewright runs this after it has pointed each component.yaml at this build's image, so the compiled
spec names exactly the images the build made.
"""

import argparse
import os

from kfp import compiler, components, dsl

HERE = os.path.dirname(os.path.abspath(__file__))
COMPONENTS = os.path.join(HERE, "..", "components")


def load(name):
    return components.load_component_from_file(os.path.join(COMPONENTS, name, "component.yaml"))


preprocess = load("preprocess")
train = load("train")
evaluate = load("evaluate")


@dsl.pipeline(
    name="breast-cancer-training",
    description="Train and evaluate a breast cancer classifier",
)
def pipeline(test_size: float = 0.25, c: float = 1.0):
    data = preprocess(test_size=test_size)
    model = train(train=data.outputs["train"], c=c)
    evaluate(model=model.outputs["model"], test=data.outputs["test"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    compiler.Compiler().compile(pipeline, args.out)
    print(f"compiled {args.out}")


if __name__ == "__main__":
    main()
