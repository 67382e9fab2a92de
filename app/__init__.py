"""The hotline service: FastAPI shell around the ACD and presence cores."""
