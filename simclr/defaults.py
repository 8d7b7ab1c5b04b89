"""The paper's recipe as plain values: every default of the method, in one place.

Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
section 3 and appendices A-B, at its CIFAR-10 setting. The library's keyword arguments
(`simclr_view`, `build_model`, `build_optimizer`, `Recipe`, `finetune`, `Protocols`) and the
params.yaml schema (simclr/config.py) both read these names, so a default is written once;
tests/simclr/test_defaults.py checks that every params default is its function's.
What sets the cost rather than the method is sized for a CPU: the `small` encoder (the paper:
ResNet-50), batch 256 (4096), 100 epochs (up to 1000).
"""

# Encoder f and projection head g (params: model)
ENCODER = "small"  # small (simclr.models), resnet18, resnet34 or resnet50 (torchvision)
WIDTH = 1  # channel multiplier of the torchvision ResNets
STEM = "auto"  # the CIFAR stem up to 64 px, the ImageNet stem above
WIDTHS = (32, 64, 128)  # small: channels per stage
BLOCKS = (1, 1, 1)  # small: BasicBlocks per stage
HEAD = "v1"  # v1 = 2-layer MLP, v2 = 3-layer MLP
PROJ_HIDDEN_DIM = 128
PROJ_DIM = 128

# Views (params: pretrain.augment), appendix A
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (0.75, 1.3333333)
FLIP_P = 0.5
JITTER_STRENGTH = 1.0
JITTER_P = 0.8
GRAYSCALE_P = 0.2
BLUR_P = 0.5
BLUR_MIN_SIZE = 33  # no blur at 32 px or less, as the paper's CIFAR setting

# Optimizer and pretraining loop (params: pretrain)
OPTIMIZER = "lars"
LR = 0.3  # x batch / 256
LR_SCALING = "linear"
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-6
TRUST_COEFFICIENT = 0.001  # LARS eta
EPOCHS = 100
BATCH_SIZE = 256
WARMUP_EPOCHS = 10
TEMPERATURE = 0.5
DEVICE = "auto"
PRECISION = "auto"
CHANNELS_LAST = True
BATCHNORM = "joint"  # BN statistics over both views of the batch together, as the paper
COMPILE = False
THREADS = None  # torch's default
LOADER_WORKERS = 0
KNN_EVERY = 10  # the kNN monitor during pretraining
KNN_K = 200
KNN_TEMPERATURE = 0.1

# Fine-tuning (params: evaluate.finetune), appendix B.5; crop_scale and flip_p as the views'
FINETUNE_EPOCHS = 20
FINETUNE_SEEDS = 1
FINETUNE_MIN_STEPS = 50
FINETUNE_MAX_STEPS = 100
FINETUNE_BATCH_SIZE = 64
FINETUNE_LR = 0.2
FINETUNE_MOMENTUM = 0.9
FINETUNE_WEIGHT_DECAY = 0.0

# Evaluation protocols (params: evaluate)
FRACTIONS = (0.01, 0.1, 1.0)
EVAL_SEEDS = 2
VAL_FRACTION = 0.2
PROBE_C = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
PROBE_MAX_ITER = 1000
EVAL_BATCH_SIZE = 128
EVAL_KNN_K = 20
EVAL_KNN_TEMPERATURE = 0.1
