"""Training: the base model, SFT and DPO through TRL and PEFT, resumable, on a CPU or GPUs."""
