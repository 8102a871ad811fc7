import sys
from pathlib import Path

# The component's code lives in src/, which is /app in its image.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
