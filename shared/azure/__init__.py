"""The Azure backend: Azure ML (azure-ai-ml v2) and Azure Storage behind the same ports as the local one."""
