"""Example rethinkbench plugins (docs/plugins.md): `nets.resnet_small`, a model factory, and
`data.load`, a dataset loader that generates its images."""
