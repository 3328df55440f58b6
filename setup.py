"""Installs mmin_tf, the Keras 3 / TensorFlow implementation of MMIN (Zhao, Li, Jin, ACL 2021)."""

import setuptools

# Feature extraction from media (python -m mmin_tf.extract, prepare --source=iemocap|msp_improv):
# versions measured together with TF 2.21 (../shared/notes/feature-extraction-facts.md).
FEATURES = [
    "apache-beam[tfrecord]==2.77.0",
    "keras-hub==0.32.0",
    "opensmile==2.6.0",
    "opencv-python-headless>=4.10,<5",  # 5.0 has no CascadeClassifier and ships no Haar files
    "soundfile>=0.12",
    "safetensors>=0.4",  # keras-hub's loader of Hugging Face BERT checkpoints
]

setuptools.setup(
    name="mmin_tf",
    version="0.1.0",
    description=(
        "Missing Modality Imagination Network for multimodal emotion recognition "
        "with uncertain missing modalities (Keras 3 / TensorFlow)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["mmin_tf", "mmin_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.0",
        "keras>=3.15,<4",
        "tensorboard==2.21.0",
        "absl-py>=2.1",
        "numpy>=1.26",
        "h5py>=3.10",
        "scikit-learn>=1.5",
        "matplotlib>=3.8",
        "scipy>=1.13",
        "tensorflow-serving-api==2.21.0",
    ],
    extras_require={
        "features": FEATURES,
        "test": ["pytest>=8", "pytest-xdist>=3.6", "hypothesis>=6.100", "scipy>=1.13", "kserve==0.21.0", "scikit-image>=0.24", *FEATURES],
        "serving": ["kserve==0.21.0"],
        "profile": ["tensorboard-plugin-profile>=2.24"],
    },
)
