"""Validation of the model being trained, through the benchmark's own code: AFLW2000-3D NME
when its crops are here (what `benchmark.py` reports for the epoch's checkpoint), else the
NME of the held-out training crops against their labels."""
from __future__ import annotations

import math

import numpy as np
import torch

from model_building import SynergyNet
from synergy3DMM.evaluation import holdout_nme, run_benchmark
from synergy3DMM.training.config import TrainConfig
from synergy3DMM.training.records import logger
from utils.ddfa import DDFATestDataset
from utils.evaluation import benchmark_data
from utils.param_layout import NUM_PARAMS
from utils.params import Whitening

AFLW2000_WORKERS = 4  # loader processes of AFLW2000-3D validation at most (and never more than --workers)


class Validation:
    """AFLW2000-3D NME when its crops are here, else the NME of the held-out training crops."""

    def __init__(self, config: TrainConfig, holdout: DDFATestDataset | None = None,
                 holdout_params: np.ndarray | None = None):
        self.config, self.holdout, self.holdout_params = config, holdout, holdout_params
        self.aflw2000 = benchmark_data(config.val_data or None)
        if self.aflw2000.present:
            self.name = "AFLW2000-3D"
            self.line = f"validation: AFLW2000-3D NME on the crops of {self.aflw2000.root}"
        elif holdout is not None and len(holdout):
            self.name = "holdout"
            self.line = (f"validation: AFLW2000-3D images not found ({self.aflw2000.crops}); NME of the 68 "
                         f"landmarks on {len(holdout)} held-out training crops against their labels "
                         f"({config.holdout:.0%} of the list's faces, not trained on)")
        else:
            self.name = "none"
            self.line = "validation: none (no AFLW2000-3D images, no held-out crops: --holdout 0)"

    def __call__(self, model: SynergyNet, device: torch.device) -> float:
        """The NME in percent (mean of the |yaw| bucket means), nan without validation data."""
        if self.name == "none":
            return math.nan
        was_training = model.training
        model.eval()
        whitening = Whitening(model.param_mean[:NUM_PARAMS].cpu().numpy(), model.param_std[:NUM_PARAMS].cpu().numpy())

        def regressor(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model.forward_test(torch.from_numpy(batch).to(device)).float().cpu().numpy()

        try:
            if self.name == "AFLW2000-3D":
                result = run_benchmark(regressor, whitening, self.aflw2000, batch_size=self.config.val_batch_size,
                                       workers=min(self.config.workers, AFLW2000_WORKERS), progress=False).result
                logger.info(result.report())
                return result.stats["ori"].mean
            values, stats = holdout_nme(regressor, whitening, self.holdout, self.holdout_params,
                                        batch_size=self.config.val_batch_size)
            logger.info(stats.message("Held-out training crops (NME)"))
            return float(np.mean(values) * 100)  # all crops (a small split leaves yaw buckets empty)
        finally:
            model.train(was_training)
