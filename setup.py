from setuptools import setup

PLUGIN_NAME = "eagerqueue"

microlib_name = f"flytekitplugins-{PLUGIN_NAME}"

plugin_requires = [
    "flytekit>=1.15.0,<2.0.0",
    "flyteidl>=1.15.0,<2.0.0",
    "grpcio>=1.60",
    "flytekitplugins-deck-standard>=1.15.0,<2.0.0",
    "cloudpickle>=2.0",
    "PyYAML>=6.0",
]

__version__ = "0.1.0"

setup(
    name=microlib_name,
    version=__version__,
    author="flytekitplugins-eagerqueue developers",
    description=(
        "A faster, retry-safe controller for Flyte @eager workflows, with an embedded dev backend"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=[
        f"flytekitplugins.{PLUGIN_NAME}",
        f"flytekitplugins.{PLUGIN_NAME}.devserver",
    ],
    install_requires=plugin_requires,
    extras_require={"deck": ["flytekitplugins-deck-standard[plotly]"]},
    license="Apache-2.0",
    python_requires=">=3.10",
    classifiers=[
        "Intended Audience :: Science/Research",
        "Intended Audience :: Developers",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Software Development :: Libraries :: Python Modules",
    ],
    entry_points={
        "flytekit.plugins": [f"{PLUGIN_NAME}=flytekitplugins.{PLUGIN_NAME}.install"],
        "console_scripts": [f"{PLUGIN_NAME}=flytekitplugins.{PLUGIN_NAME}.devserver.cli:main"],
    },
)
