"""The sentiment model: load encoders and adapters, LoRA fine-tuning, distillation, evaluation."""
