"""MLflow "model from code" entry: logged as the pyfunc's python_model, so no pickled object is stored."""

import mlflow

from arritmias.serving.pyfunc import ArritmiasPyfunc

mlflow.models.set_model(ArritmiasPyfunc())
