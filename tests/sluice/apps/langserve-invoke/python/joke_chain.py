"""A LangServe chain (prompt | ChatOpenAI) at /chain, served by its own uvicorn on port 8000.

LangStream's services hard-coded port 8000 and its langserve-invoke example calls
``http://host:8000/chain/stream``; this service does the same, so the pipelines of this
application reach it at ``http://localhost:8000/chain/...``. ChatOpenAI reads OPENAI_API_KEY and
OPENAI_BASE_URL from the environment of `sluice run`.
"""

import uvicorn
from fastapi import FastAPI
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from langserve import add_routes

from sluice import Service


class JokeChain(Service):
    def main(self) -> None:
        app = FastAPI(title="Jokes")
        prompt = ChatPromptTemplate.from_template("tell me a joke about {topic}")
        add_routes(app, prompt | ChatOpenAI(model="gpt-4o-mini"), path="/chain")
        uvicorn.run(app, host="127.0.0.1", port=8000)
