"""Fusion mapped over spatial blocks x time windows on Dask, written into the store.

``plan`` (pure: blocks, halos, reference pairs) -> ``dispatch`` (persist the
scenes, submit input / model / write tasks) -> ``worker`` (model cache, fusion
and region write on the worker); ``engine.fuse_into_store`` ties them to a
store; ``cluster.open_client`` gives the LocalCluster or remote client;
``model_prep`` trains or loads the model. torch is imported only via models.
"""
