"""The celery app that workers run (``benchmark-assets worker``, or ``celery -A
benchmark_assets.defs.scale_out.celery_app worker``): dagster-celery's tasks, with the broker and the result
backend of this deployment's environment (``defs.scale_out``), so no config file is needed."""
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from benchmark_assets.defs import scale_out

if not scale_out.broker():
    raise RuntimeError(f"${scale_out.BROKER_ENV} is not set; set it to the broker the runs use, e.g. "
                       "redis://127.0.0.1:6379/0 or pyamqp://guest@127.0.0.1//")

app = make_app(CeleryExecutor.for_cli(**scale_out.executor_config()).app_args())
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
